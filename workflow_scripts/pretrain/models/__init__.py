"""The model families a recipe trains, and their export to Hugging Face folders."""
