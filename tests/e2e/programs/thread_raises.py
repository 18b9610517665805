import threading


def fail() -> None:
    raise ValueError("raised in a thread")


thread = threading.Thread(target=fail, name="doomed")
thread.start()
thread.join()
print("main carries on")
