"""Box layout, coders, assigners and match costs shared by heads and evaluation."""
