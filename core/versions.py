"""Release versions: "1.2.3" -> (1, 2, 3). One parser for the update checks and the runner."""


class VersionError(ValueError):
    pass


def version_tuple(text):
    try:
        parts = tuple(int(p) for p in text.split("."))
    except (AttributeError, ValueError):
        raise VersionError(f"“{text}” is not a version such as 1.2.3.") from None
    if len(parts) != 3:
        raise VersionError(f"“{text}” is not a version such as 1.2.3.")
    return parts
