"""Files on disk: segment files, crash repair, retention."""
