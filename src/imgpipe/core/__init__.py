"""The pure core: bytes in, renditions + metadata + tags (or a typed rejection) out.

Nothing here imports AWS, HTTP or database code; the only I/O is the bytes handed in.
"""
