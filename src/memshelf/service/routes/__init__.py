"""One small router per resource; each only translates HTTP to an ``ops`` call and back."""
