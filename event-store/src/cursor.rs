use std::fmt;
use std::str::FromStr;

/// A position in the log's total order: `(tx_id, global_position)`.
///
/// Identity values commit out of order, so the position alone is not an order readers can
/// trust. Ordering by the writing transaction's id first, and reading only transactions
/// below the snapshot's `xmin`, gives an order in which no event can appear behind a
/// reader. The text form is `"<tx_id>-<global_position>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    pub tx_id: i64,
    pub position: i64,
}

impl Cursor {
    /// Before the first event.
    pub const ZERO: Cursor = Cursor {
        tx_id: 0,
        position: 0,
    };

    pub fn new(tx_id: i64, position: i64) -> Self {
        Self { tx_id, position }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.tx_id, self.position)
    }
}

/// The text was not `"<tx_id>-<global_position>"` with two non-negative integers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a cursor looks like \"<tx_id>-<position>\", e.g. \"812-45\"")]
pub struct CursorParseError;

impl FromStr for Cursor {
    type Err = CursorParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.trim().split_once('-').ok_or(CursorParseError)?;
        let tx_id: i64 = tx.parse().map_err(|_| CursorParseError)?;
        let position: i64 = pos.parse().map_err(|_| CursorParseError)?;
        if tx_id < 0 || position < 0 {
            return Err(CursorParseError);
        }
        Ok(Self { tx_id, position })
    }
}

impl serde::Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_order_by_transaction_first() {
        assert!(Cursor::new(5, 100) < Cursor::new(6, 1));
        assert!(Cursor::new(6, 1) < Cursor::new(6, 2));
    }

    #[test]
    fn a_cursor_round_trips_through_text() {
        let c = Cursor::new(812, 45);
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for s in ["", "12", "a-1", "1-b", "-1-2", "1-2-3"] {
            assert_eq!(s.parse::<Cursor>(), Err(CursorParseError), "{s}");
        }
    }
}
