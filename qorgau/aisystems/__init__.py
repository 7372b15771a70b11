"""The AI systems register (L-AI-REGISTER, L-AI-RISK …). For now: the systems that submit decisions."""
