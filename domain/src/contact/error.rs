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
    /// The contact was merged into another one, which answers for it from now on.
    #[error("the contact was merged into {survivor_id}")]
    MergedInto { survivor_id: uuid::Uuid },
    /// The contact was erased (GDPR); nothing can be done with it any more.
    #[error("the contact was erased")]
    Erased,
    /// A contact cannot be merged into itself.
    #[error("a contact cannot be merged into itself")]
    MergeIntoItself,
    /// The contact to merge from does not exist.
    #[error("no such contact to merge from")]
    MergeSourceNotFound,
    /// The contact to merge from was already merged (into `survivor_id`).
    #[error("the contact to merge from was already merged into {survivor_id}")]
    MergeSourceMerged { survivor_id: uuid::Uuid },
    /// The contact to merge into was itself merged (into `survivor_id`).
    #[error("the contact to merge into was merged into {survivor_id}")]
    MergeTargetMerged { survivor_id: uuid::Uuid },
}

impl ContactError {
    /// The contact that answers for a merged one, if this refusal says the contact was merged.
    pub fn survivor(&self) -> Option<uuid::Uuid> {
        match self {
            Self::MergedInto { survivor_id } => Some(*survivor_id),
            _ => None,
        }
    }
}
