"""Dashboard routes of the address book, mounted under /o/<org_slug>/."""

from messaging.views import bulk, contacts, imports, inbox

urlpatterns = [*inbox.urlpatterns, *contacts.urlpatterns, *imports.urlpatterns, *bulk.urlpatterns]
