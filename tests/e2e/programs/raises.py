import threading


def work() -> None:
    pass


threading.Thread(target=work, name="helper").start()
raise RuntimeError("boom from the target")
