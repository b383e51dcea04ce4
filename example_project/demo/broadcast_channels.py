"""Channel rules of the example site (autodiscovered, like Laravel's routes/channels.php).

The demo's channels and who may join them:

==========================  ==========  ==============================================
channel                     kind        rule
==========================  ==========  ==============================================
``user.registered``         public      declared here (see below)
``user.{id}``               private     built-in: that user only (notifications)
``presence.chat.{room}``    presence    built-in: any logged-in user, info ``{id, name}``
``admin.dashboard``         private     built-in ``admin.*``: the ``admin`` role (staff)
``cache-user.{id}``         private     declared here: that user only; a cache channel
                                        (Echo's ``private('cache-user.5')``; a new
                                        subscriber gets the last event at once)
``presence.cache-room.{r}`` presence    declared here: any logged-in user (Echo's
                                        ``join('cache-room.1')``), a cache channel too
==========================  ==========  ==============================================

``user.registered`` must be declared public: otherwise the built-in ``user.{user_id}`` rule
would match it (as the channel of a user whose id is ``"registered"``) and refuse everyone.
Project rules are tried before the built-in ones, so this declaration wins.
"""

from django_broadcasting.authorization import channel, default_member_info, public_channel

from .events import REGISTRATIONS_CHANNEL

public_channel(REGISTRATIONS_CHANNEL)


@channel("cache-user.{user_id}")
def own_cache_channel(identity, user_id):
    return identity.user_id == user_id


@channel("presence.cache-room.{room_id}")
def cache_room(identity, room_id):
    return default_member_info(identity)
