"""HTTP session and error boundary, safe paths, part files: everything that touches the outside."""
