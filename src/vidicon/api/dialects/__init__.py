"""Vendor API dialects: each translates its vendor's API onto Vidicon's services."""
