"""The Discord client as the Discord side sees it: discord.py's Bot, never the bot class itself (that
lives in bot/app.py, which only the entry points import); services come from bot.wiring.services_of."""

from __future__ import annotations

import discord
from discord.ext import commands

Client = commands.AutoShardedBot
Interaction = discord.Interaction[commands.AutoShardedBot]
