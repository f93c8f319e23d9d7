"""Train: tokenise accepted pieces, build datasets, fit and register the LSTM."""
