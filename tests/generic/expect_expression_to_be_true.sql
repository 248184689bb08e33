{#- Expectation: the boolean SQL `expression` holds on every row (NULL counts as false).
    Returns the rows where it does not. Optional, for the validation hook:
    `report_column` names the column whose cell a failing row is reported under (its
    column_name and value, so the hook names that column's source header), when the
    expression is not about one column; `review_columns` lists the columns a review of a
    failing row is about (review_basis: a review holds while they are unchanged, whatever
    else of the row changes). -#}
{% test expect_expression_to_be_true(
    model, expression, report_column=none, review_columns=none
) %}
    {%- set pairs = [] -%}
    {%- for column in review_columns or [] -%}
        {%- do pairs.append("'" ~ column ~ "', " ~ column) -%}
    {%- endfor %}

    select
        *
    {%- if report_column %},
        '{{ report_column }}' as column_name,
        {{ report_column }}::text as value
        {%- endif %}
{%- if pairs %},
        jsonb_build_object({{ pairs | join(', ') }}) as review_basis
        {%- endif %}
    from {{ model }}
    where not coalesce(({{ expression }}), false)

{% endtest %}
