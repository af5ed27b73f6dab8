"""Videos to skeleton pickles."""
