import threading
import time


def nap() -> None:
    time.sleep(30)


worker = threading.Thread(target=nap, name="napping")
worker.start()
print("started", flush=True)
worker.join()
