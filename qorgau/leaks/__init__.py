"""The unified register of leaked data (issue 8; L-PD-BREACH, L-PD-LEAK-REGISTER).

Incident reports from operators, leaked identifiers stored only as keyed OPRF tokens (``oprf``), the
immutable token index, and the lookup paths for citizens, subscribers and screening operators.
"""
