import threading


def stuck() -> None:
    threading.Event().wait()


threading.Thread(target=stuck, name="stuck-forever").start()
