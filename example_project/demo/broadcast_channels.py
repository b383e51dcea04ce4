"""Channel rules of the example site (autodiscovered, like Laravel's routes/channels.php).

The demo's channels and who may join them:

==========================  ==========  ==============================================
channel                     kind        rule
==========================  ==========  ==============================================
``user.registered``         public      declared here (see below)
``user.{id}``               private     built-in: that user only (notifications)
``presence.chat.{room}``    presence    built-in: any logged-in user, info ``{id, name}``
``admin.dashboard``         private     built-in ``admin.*``: the ``admin`` role (staff)
==========================  ==========  ==============================================

``user.registered`` must be declared public: otherwise the built-in ``user.{user_id}`` rule
would match it (as the channel of a user whose id is ``"registered"``) and refuse everyone.
Project rules are tried before the built-in ones, so this declaration wins.
"""

from django_broadcasting.authorization import public_channel

from .events import REGISTRATIONS_CHANNEL

public_channel(REGISTRATIONS_CHANNEL)
