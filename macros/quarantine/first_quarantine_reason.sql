{#-
    The first quarantine reason that holds, as a CASE expression (NULL when none holds).
    `conditions` maps reasons of the catalogue (seeds/quarantine_reasons.csv) to the SQL
    condition under which each holds; the WHENs follow the catalogue's precedence whatever
    the mapping's order, so a model states what its reasons mean and the catalogue alone
    decides which wins. A reason the catalogue lacks stops the build. While dbt parses (and
    sqlfluff lints) nothing is queried, and the mapping's order stands in.
-#}
{% macro first_quarantine_reason(conditions) -%}
    {%- set catalogue = ref('quarantine_reasons') -%}
    {%- set reasons = conditions.keys() | list -%}
    {%- if execute -%}
        {%- set precedence = run_query(
            'select reason from ' ~ catalogue ~ ' order by precedence'
        ).columns[0].values() | list -%}
        {%- set unknown = reasons | reject('in', precedence) | list -%}
        {%- if unknown -%}
            {{ exceptions.raise_compiler_error(
                'quarantine reasons not in seeds/quarantine_reasons.csv: '
                ~ unknown | join(', ')) }}
        {%- endif -%}
        {%- set reasons = precedence | select('in', reasons) | list -%}
    {%- endif %}
case
    {%- for reason in reasons %}
    when {{ conditions[reason] }} then '{{ reason }}'
    {%- endfor %}
end
{%- endmacro %}
