"""Use cases. Services own transactions and permissions; APIs only translate."""
