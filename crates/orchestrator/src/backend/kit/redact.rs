//! The one redactor: `azure-staging`'s, which masks every SAS signature (`sig=`, `sig%3d`),
//! account key (`AccountKey=`), bearer token and Shared Key signature in a text, however many
//! there are. Every backend and the core use it; none keeps its own.

pub use azure_staging::redact::{REDACTED, redact};
