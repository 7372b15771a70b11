"""Labels for AI-generated content: a signed machine-readable marking plus a warning people perceive (issue 9).

The AI law lets synthetic results (L-AI-DEF) be distributed only with a machine-readable marking and a visible or
other warning the user perceives unobstructed, and makes the AI system's owner answer for it (L-AI-LABEL,
fines under CoAO Art.641-1: L-FINE-AI). qorgau embeds a signed C2PA manifest naming the AI system's register
number and the operator's BIN, draws or adds the warning the format allows, and verifies labels anyone brings.
See docs/labels.md.
"""
