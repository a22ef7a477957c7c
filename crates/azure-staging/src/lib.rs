//! Azure Blob Storage staging for the orchestrator.
