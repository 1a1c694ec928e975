-- Contract 15.1: stored callback URLs hold no credentials. Until now an X-Async of
-- http://user:secret@host/cb was accepted and stored as given, readable by pdam_operator
-- in three places; payments now refuse such a URL (400), and this removes the user
-- information (everything between "//" and the last "@" before the path) from the URLs
-- already stored. The receiver is the same host; a callback that needed those credentials
-- is refused by it (4xx) and shows in the callbacks log, from where it can be resent once
-- the partner gives a URL without them.
update payment
   set callback_url = regexp_replace(callback_url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1')
 where callback_url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';

update webhook_delivery
   set url = regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1')
 where url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';

update webhook_attempt
   set url = regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1')
 where url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';
