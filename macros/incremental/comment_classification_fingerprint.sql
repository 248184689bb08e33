{#- The post-hook of int_delivery_rows_classified: keep, as the table's comment, the
    fingerprint of the raw tables it was built from besides the deliveries' (macro
    delivery_classification_plan); a later build that finds another one classifies every
    row again. -#}
{% macro comment_classification_fingerprint() -%}
    {%- set plan = delivery_classification_plan(none) -%}
    comment on table {{ this }} is '{{ plan.fingerprint }}'
{%- endmacro %}
