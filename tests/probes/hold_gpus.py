"""A fake GPU job: sleep SECONDS, then write "<CUDA_VISIBLE_DEVICES> <start> <end>" (seconds since the
epoch) to PATH. Usage: hold_gpus.py PATH SECONDS (tests/test_gpu_slots.py)."""
import os
import sys
import time

if __name__ == "__main__":
    path, seconds = sys.argv[1], float(sys.argv[2])
    start = time.time()
    time.sleep(seconds)
    with open(path, "w") as f:
        f.write(f"{os.environ['CUDA_VISIBLE_DEVICES']} {start} {time.time()}")
