"""A directed acyclic graph of named vertices and the pure queries plans and selectors need."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence


class Graph:
    """Vertices with edges from each vertex to its parents (the vertices it depends on).

    Built once, never mutated; vertex order (insertion order) breaks ties in orderings so
    every query is deterministic.
    """

    def __init__(self, parents: Mapping[str, Sequence[str]]) -> None:
        self._order: dict[str, int] = {vertex: i for i, vertex in enumerate(parents)}
        self._parents: dict[str, tuple[str, ...]] = {}
        self._children: dict[str, list[str]] = {vertex: [] for vertex in parents}
        for vertex, ups in parents.items():
            unique = tuple(dict.fromkeys(up for up in ups if up in self._order))
            self._parents[vertex] = unique
            for up in unique:
                self._children[up].append(vertex)

    def __contains__(self, vertex: object) -> bool:
        return vertex in self._order

    def __len__(self) -> int:
        return len(self._order)

    @property
    def vertices(self) -> list[str]:
        """Every vertex, in insertion order."""
        return list(self._order)

    def parents(self, vertex: str) -> tuple[str, ...]:
        """The vertices `vertex` depends on directly."""
        return self._parents[vertex]

    def children(self, vertex: str) -> tuple[str, ...]:
        """The vertices that depend on `vertex` directly."""
        return tuple(self._children[vertex])

    def ancestors(self, start: Iterable[str], depth: int | None = None) -> set[str]:
        """Vertices reachable by following parent edges, up to `depth` edges (None: all)."""
        return self._walk(start, self._parents, depth)

    def descendants(self, start: Iterable[str], depth: int | None = None) -> set[str]:
        """Vertices reachable by following child edges, up to `depth` edges (None: all)."""
        return self._walk(start, self._children, depth)

    @staticmethod
    def _walk(
        start: Iterable[str], edges: Mapping[str, Sequence[str]], depth: int | None
    ) -> set[str]:
        seen: set[str] = set()
        frontier = deque((vertex, 0) for vertex in start)
        while frontier:
            vertex, distance = frontier.popleft()
            if depth is not None and distance >= depth:
                continue
            for nxt in edges[vertex]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append((nxt, distance + 1))
        return seen

    def cycles(self) -> list[list[str]]:
        """One cycle (as a closed path a, b, ..., a) per group of vertices that form cycles.

        Empty when the graph is acyclic.
        """
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self._order, white)
        found: list[list[str]] = []
        seen_members: set[frozenset[str]] = set()
        for root in self._order:
            if colour[root] != white:
                continue
            path: list[str] = [root]
            stack = [iter(self._parents[root])]
            colour[root] = grey
            while stack:
                nxt = next(stack[-1], None)
                if nxt is None:
                    stack.pop()
                    colour[path.pop()] = black
                elif colour[nxt] == white:
                    colour[nxt] = grey
                    path.append(nxt)
                    stack.append(iter(self._parents[nxt]))
                elif colour[nxt] == grey:
                    loop = path[path.index(nxt) :]
                    members = frozenset(loop)
                    if members not in seen_members:
                        seen_members.add(members)
                        # Printed in dependency order: each vertex runs after the next one.
                        found.append([*loop, nxt])
        return found

    def topological_order(self) -> list[str]:
        """Vertices with every parent before its children; ties keep insertion order.

        Raises ValueError when the graph has a cycle (use `cycles()` to name it).
        """
        pending = {vertex: len(ups) for vertex, ups in self._parents.items()}
        ready = [(self._order[v], v) for v, count in pending.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, vertex = heapq.heappop(ready)
            order.append(vertex)
            for child in self._children[vertex]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, (self._order[child], child))
        if len(order) != len(self._order):
            raise ValueError("graph has a cycle")
        return order


def format_cycle(cycle: Sequence[str]) -> str:
    """A cycle as `a -> b -> a`, read as "a depends on b, which depends on a"."""
    return " -> ".join(cycle)
