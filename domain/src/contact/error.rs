/// Why a contact refused a command (domain rejections; infrastructure errors are elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// A contact with this id already exists.
    #[error("the contact already exists")]
    AlreadyExists,
    /// There is no contact with this id.
    #[error("no such contact")]
    NotFound,
    /// The change would leave the contact with more tags than allowed.
    #[error("a contact can carry at most {max} tags")]
    TooManyTags { max: usize },
    /// The change would leave the contact with more custom fields than allowed.
    #[error("a contact can carry at most {max} custom fields")]
    TooManyFields { max: usize },
    /// Points would leave the range a total can hold.
    #[error("points must stay between -1000000000 and 1000000000")]
    PointsOutOfRange,
    /// No such note on this contact.
    #[error("no such note")]
    NoteNotFound,
    /// The contact has as many notes as allowed.
    #[error("a contact can carry at most {max} notes")]
    TooManyNotes { max: usize },
}
