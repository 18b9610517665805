import os
import threading
import time

threading.Thread(target=time.sleep, args=(0.05,), name="napper").start()
time.sleep(0.1)
os._exit(4)
