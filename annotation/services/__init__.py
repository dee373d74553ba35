"""Every write to annotation data goes through a function in this package, named <thing>_<action>
and taking keyword-only arguments. Modules split by area: projects, tasks, candidates, imports,
review, exports."""
