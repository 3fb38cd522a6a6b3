//! The graph of a journey's steps: what is reachable from the entries, and cycles that
//! never wait.

use super::*;

pub(super) fn reach<'a>(
    entries: &[&'a str],
    ids: &HashMap<&'a str, &'a Step>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = entries.to_vec();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(s) = ids.get(id) {
            todo.extend(s.next.iter().map(String::as_str));
            todo.extend(s.branches.values().map(String::as_str));
        }
    }
    seen
}

/// A cycle whose every step passes straight through (no step of it waits), as step ids.
pub(super) fn busy_cycle<'a>(
    steps: &'a [Step],
    ids: &HashMap<&'a str, &'a Step>,
) -> Option<Vec<&'a str>> {
    // Depth-first search over the steps that do not wait; a back edge closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = steps.iter().map(|s| (s.id.as_str(), Mark::New)).collect();
    for start in steps.iter().filter(|s| !s.kind.waits()) {
        if mark.get(start.id.as_str()) != Some(&Mark::New) {
            continue;
        }
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start.id.as_str(), edges(start))];
        mark.insert(start.id.as_str(), Mark::Open);
        while let Some((id, rest)) = stack.last_mut() {
            let id = *id;
            match rest.pop() {
                None => {
                    mark.insert(id, Mark::Done);
                    stack.pop();
                }
                Some(next) => {
                    let Some(step) = ids.get(next) else { continue };
                    if step.kind.waits() {
                        continue;
                    }
                    match mark.get(next).copied() {
                        Some(Mark::Open) => {
                            let from = stack.iter().position(|(s, _)| *s == next).unwrap_or(0);
                            return Some(stack[from..].iter().map(|(s, _)| *s).collect());
                        }
                        Some(Mark::New) => {
                            mark.insert(next, Mark::Open);
                            stack.push((next, edges(step)));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    None
}

pub(super) fn edges(s: &Step) -> Vec<&str> {
    s.next
        .iter()
        .map(String::as_str)
        .chain(s.branches.values().map(String::as_str))
        .collect()
}
