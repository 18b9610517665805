def tiny(x: int) -> int:
    return x + 1


total = 0
for _ in range(30_000):
    total = tiny(total)
print(total)
