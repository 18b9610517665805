import sys
import threading
import time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
threads = [threading.Thread(target=time.sleep, args=(0.2,), name=f"w{i}") for i in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
