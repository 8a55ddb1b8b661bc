"""Box coders: turn head outputs into boxes, scores and labels."""
