"""hello: the smallest useful reclaim_ext policy, a FIFO with a second chance (CLOCK-like).

Run it:  reclaim-ext run --cache --capacity 1000 --policy examples/hello.py
Check:   reclaim-ext check examples/hello.py
"""

from reclaim_ext.ext import IndexedList, Policy


class Hello(Policy):
    name = "hello"

    def init(self, ctx):
        self.queue = IndexedList()   # head = newest, tail = oldest
        self.referenced = set()      # pages hit since they were last passed over

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
        victims, h = [], self.queue.tail()
        while h is not None and len(victims) < n:
            towards_head = self.queue.prev(h)
            if h in self.referenced:     # second chance: back to the head, bit cleared
                self.referenced.discard(h)
                self.queue.move_head(h)
                towards_head = towards_head if towards_head is not None else h  # it was the head
            else:
                victims.append(h)
            h = towards_head
        return victims
