"""Server-rendered pages, one module per area. Views are thin: selectors to read, services to
write; an htmx request gets only the partial it swaps."""
