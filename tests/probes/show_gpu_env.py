"""Print what a job sees: repr(CUDA_VISIBLE_DEVICES) and DS_ACCELERATOR (tests/test_gpu_slots.py)."""
import os

if __name__ == "__main__":
    print(repr(os.environ.get("CUDA_VISIBLE_DEVICES")), os.environ.get("DS_ACCELERATOR"))
