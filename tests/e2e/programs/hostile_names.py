import threading

EVIL = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


def work() -> None:
    total = 0
    for i in range(200_000):
        total += i


work.__name__ = work.__qualname__ = EVIL
worker = threading.Thread(target=work, name=EVIL)
worker.start()
worker.join()
