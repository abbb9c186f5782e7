//! The rule for appearing in Find Mentors (product-spec §2), in one place: active, approved,
//! at least one subject, at least one unblocked slot, a UPI id, and (when the admin requires it)
//! an approved photo or video.

/// SQL condition over `users u JOIN mentor_profiles p`; `$1` is "media approval required".
pub const VISIBLE_MENTOR: &str = r#"
    u.role = 'mentor' AND u.is_active AND u.approval_status = 'approved'
    AND p.upi_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM teacher_subjects s WHERE s.mentor_id = u.user_id)
    AND EXISTS (SELECT 1 FROM time_slots t WHERE t.mentor_id = u.user_id AND NOT t.is_blocked)
    AND (NOT $1 OR EXISTS (
        SELECT 1 FROM mentor_media m WHERE m.mentor_id = u.user_id AND m.status = 'approved'))
"#;

/// The admin's "media approval required" setting.
pub async fn media_approval_required(state: &platform::AppState) -> platform::Result<bool> {
    let settings =
        domain::platform_settings::load::<domain::platform_settings::MarketplaceSettings>(state)
            .await?;
    Ok(settings.media_approval_required)
}
