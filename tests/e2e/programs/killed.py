import os
import signal
import threading
import time

threading.Thread(target=time.sleep, args=(5,), name="sleeper", daemon=True).start()
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGKILL)
