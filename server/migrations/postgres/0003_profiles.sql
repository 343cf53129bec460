-- The 我的 page shows the shopper's WeChat profile (snsapi_userinfo). `users.nickname` and
-- `users.avatar_url` (0001) hold it; these record when it was fetched, and when the shopper last
-- asked for it in vain (the shopper said no, or WeChat failed), so the page does not send the
-- shopper to WeChat again on every visit.
ALTER TABLE users ADD COLUMN profile_updated_at BIGINT;
ALTER TABLE users ADD COLUMN profile_declined_at BIGINT;

-- The scope an OAuth flow asked for, and whether it carries an earlier "no" to snsapi_userinfo
-- (then it is the silent snsapi_base flow that still has to learn the openid).
ALTER TABLE oauth_states ADD COLUMN scope TEXT NOT NULL DEFAULT 'snsapi_base';
ALTER TABLE oauth_states ADD COLUMN profile_declined BOOLEAN NOT NULL DEFAULT FALSE;
