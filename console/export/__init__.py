"""An incident's export: the postmortem draft in Markdown, and JSON in a versioned
schema."""
