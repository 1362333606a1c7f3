from rest_framework.pagination import CursorPagination, PageNumberPagination


class DefaultPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SeqCursorPagination(CursorPagination):
    """Stable cursor pagination for append-only tables (audit entries, event timelines)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "seq"
