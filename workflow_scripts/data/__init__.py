"""Data stages: raw sources -> cleaned text parts -> tokenizer -> masked-LM HDF5 shards."""
