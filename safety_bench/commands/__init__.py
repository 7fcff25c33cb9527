"""The subcommands of `safety-bench`, one module per area: thin argument parsing over the library."""
