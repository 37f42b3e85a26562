"""Where raw documents come from: Wikipedia dumps, the user's files, Hugging Face datasets, URLs."""
