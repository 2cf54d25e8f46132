"""directory's errors (registered remote errors; see weintervene.errors)."""


class LayoutError(ValueError):
    """The files are not in a layout we can read (a 400 for the caller; the CLI exits 2)."""
