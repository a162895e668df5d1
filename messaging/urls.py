"""Dashboard routes of the address book and the inbox, mounted under /o/<org_slug>/."""

from messaging.views import bulk, contacts, imports, inbox, replies

urlpatterns = [
    *inbox.urlpatterns,
    *replies.urlpatterns,
    *contacts.urlpatterns,
    *imports.urlpatterns,
    *bulk.urlpatterns,
]
