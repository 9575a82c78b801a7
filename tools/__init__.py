"""Tools for working on this repository, kept out of the `hyperflux` package (the wheel ships only `hyperflux*`)."""
