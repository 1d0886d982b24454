"""Local stand-ins of the providers' APIs that speak real HTTP."""
