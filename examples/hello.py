"""hello: the smallest useful reclaim_ext policy, a FIFO with a second chance (CLOCK-like).

Run it:  reclaim-ext run --cache --capacity 1000 --policy examples/hello.py
"""

from reclaim_ext.ext import IndexedList, Policy


class Hello(Policy):
    name = "hello"

    def init(self, ctx):
        self.queue = IndexedList()   # head = newest, tail = oldest
        self.referenced = set()      # pages hit since they last reached the tail

    def added(self, ctx, handles):
        for h in handles.tolist():
            self.queue.push_head(h)

    def accessed(self, ctx, handles):
        self.referenced.update(handles.tolist())

    def removed(self, ctx, handles):
        for h in handles.tolist():
            self.queue.discard(h)
            self.referenced.discard(h)

    def evict(self, ctx, n):
        # a referenced page at the tail gets a second chance: back to the head, bit cleared
        while self.queue.tail() in self.referenced:
            h = self.queue.pop_tail()
            self.referenced.discard(h)
            self.queue.push_head(h)
        return [self.queue.tail()]
